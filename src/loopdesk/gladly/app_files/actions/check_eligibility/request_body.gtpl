{{- /* The order and what the shop's Loop checks against it (its ZIP, or the
       customer's email or phone); the conversation, kept with the draft. */ -}}
{{- $body := dict "orderName" .inputs.orderName "secondaryInput" .inputs.secondaryInput -}}
{{- if hasKey .inputs "isGift" }}{{ $_ := set $body "isGift" .inputs.isGift }}{{ end -}}
{{- with .inputs.conversationId }}{{ $_ := set $body "conversationId" . }}{{ end -}}
{{ toJson $body }}
