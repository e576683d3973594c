{{- /* The loopdesk API key pasted as the app's credential, on every pull and action. */ -}}
{{- if not .integration.secrets.apiKey }}{{ fail [[ missing_key_message | gostring ]] }}{{ end -}}
Bearer {{ .integration.secrets.apiKey }}
