{{- /* The policy decides; `vip` and the tags are what Gladly knows of the customer
       (a "VIP" tag makes them VIP, as loopdesk's policy file says). */ -}}
{{- $body := dict "emails" .inputs.emails "orderName" .inputs.orderName -}}
{{- if hasKey .inputs "vip" }}{{ $_ := set $body "vip" .inputs.vip }}{{ end -}}
{{- with .inputs.tags }}{{ $_ := set $body "attributes" (dict "tags" .) }}{{ end -}}
{{- with .inputs.conversationId }}{{ $_ := set $body "conversationId" . }}{{ end -}}
{{ toJson $body }}
