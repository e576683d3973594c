{{- /* A draft step: a 2xx is the draft as it is now (its `nextSteps` are the only
       legal next steps). A refusal in loopdesk's error body is a typed error, with what
       helps the next move: the steps Loop offers (`nextSteps`), Loop's own errors on a
       `loop_validation_error` (`loopErrors`, each with Loop's `code`), and whether Loop
       may have applied a failed write (`outcomeUnknown`: check the draft before
       retrying). Anything else is a failure. */ -}}
{{- $status := int .response.statusCode -}}
{{- if and (ge $status 200) (lt $status 300) -}}
{{ toJson .rawData }}
{{- else if and (kindIs "map" .rawData) (kindIs "map" .rawData.error) -}}
{{- $error := pick .rawData.error "code" "message" -}}
{{- $details := .rawData.error.details -}}
{{- if kindIs "map" $details -}}
{{- if hasKey $details "nextSteps" }}{{ $_ := set $error "nextSteps" $details.nextSteps }}{{ end -}}
{{- if and (eq .rawData.error.code "loop_validation_error") (hasKey $details "errors") }}{{ $_ := set $error "loopErrors" $details.errors }}{{ end -}}
{{- if hasKey $details "outcomeUnknown" }}{{ $_ := set $error "outcomeUnknown" $details.outcomeUnknown }}{{ end -}}
{{- end -}}
{{ toJson (dict "error" $error) }}
{{- else -}}
{{ fail (printf "loopdesk answered HTTP %d without its error body" $status) }}
{{- end -}}