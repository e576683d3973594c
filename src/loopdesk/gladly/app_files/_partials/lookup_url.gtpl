{{- /* One request per customer: every address of the profile in one lookup, which
       loopdesk answers from its store while it is fresh. Primary address first. */ -}}
{{- $emails := list -}}
{{- with .customer.primaryEmailAddress }}{{ $emails = append $emails (lower (trim .)) }}{{ end -}}
{{- range .customer.emailAddresses }}{{ $emails = append $emails (lower (trim .)) }}{{ end -}}
{{- $emails = without (uniq $emails) "" -}}
{{- if not $emails }}{{ stop [[ stop_message | gostring ]] }}{{ end -}}
[[ base_url ]]/v1/customers/lookup?{{ range $i, $email := $emails }}{{ if $i }}&{{ end }}email={{ urlquery $email }}{{ end }}
