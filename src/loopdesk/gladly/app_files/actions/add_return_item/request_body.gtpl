{{ toJson (dict "orderLineItemId" .inputs.orderLineItemId) }}
