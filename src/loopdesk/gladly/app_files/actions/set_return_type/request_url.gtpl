[[ base_url ]]/v1/drafts/{{ urlquery .inputs.draftReturnId }}/items/{{ urlquery .inputs.returningItemId }}/type
