{{ toJson (dict "creditType" .inputs.creditType) }}
