[[ base_url ]]/v1/exceptions/requests
