{{ toJson (dict "returnMethodId" .inputs.returnMethodId) }}
