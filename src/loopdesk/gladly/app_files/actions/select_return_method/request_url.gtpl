[[ base_url ]]/v1/drafts/{{ urlquery .inputs.draftReturnId }}/return-method
