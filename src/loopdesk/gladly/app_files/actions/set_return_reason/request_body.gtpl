{{ toJson (dict "reasonId" .inputs.reasonId) }}
