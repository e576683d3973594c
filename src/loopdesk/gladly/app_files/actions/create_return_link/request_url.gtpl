[[ base_url ]]/v1/actions/return-link
