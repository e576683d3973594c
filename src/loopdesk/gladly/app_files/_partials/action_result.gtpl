{{- /* A 2xx is loopdesk's answer, already in the action's type. Any other status
       with loopdesk's error body (an `error` object: `code`, `message`, `details`) is
       a typed error the assistant can read out; anything else is a failure. (401 and
       403 are the platform's: a wrong API key.) */ -}}
{{- $status := int .response.statusCode -}}
{{- if and (ge $status 200) (lt $status 300) -}}
{{ toJson .rawData }}
{{- else if and (kindIs "map" .rawData) (kindIs "map" .rawData.error) -}}
{{ toJson (dict "error" (pick .rawData.error "code" "message")) }}
{{- else -}}
{{ fail (printf "loopdesk answered HTTP %d without its error body" $status) }}
{{- end -}}
