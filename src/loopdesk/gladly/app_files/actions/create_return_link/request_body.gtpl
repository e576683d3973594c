{{- /* `zip` is what the shop's Loop checks against the order: its ZIP, email or phone. */ -}}
{{ toJson (dict "orderName" .inputs.orderName "zip" .inputs.zip) }}
