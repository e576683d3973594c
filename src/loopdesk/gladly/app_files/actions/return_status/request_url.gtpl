{{- /* Every address the assistant passes; the order too when it names one. */ -}}
[[ base_url ]]/v1/returns/status?{{ range $i, $email := .inputs.emails }}{{ if $i }}&{{ end }}email={{ urlquery $email }}{{ end }}{{ with .inputs.orderName }}&order={{ urlquery . }}{{ end }}
