[[ base_url ]]/v1/drafts
