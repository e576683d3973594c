{{ toJson (dict "returnType" .inputs.returnType) }}
