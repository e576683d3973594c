{{ toJson (dict "variantId" .inputs.variantId) }}
