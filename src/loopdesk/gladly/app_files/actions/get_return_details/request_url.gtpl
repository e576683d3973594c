{{- /* Each identifier given, in this order; none: loopdesk says one is needed. */ -}}
{{- $query := list -}}
{{- with .inputs.returnId }}{{ $query = append $query (printf "returnId=%s" (urlquery .)) }}{{ end -}}
{{- with .inputs.orderId }}{{ $query = append $query (printf "orderId=%s" (urlquery .)) }}{{ end -}}
{{- with .inputs.orderName }}{{ $query = append $query (printf "orderName=%s" (urlquery .)) }}{{ end -}}
{{- with .inputs.currencyType }}{{ $query = append $query (printf "currencyType=%s" (urlquery .)) }}{{ end -}}
[[ base_url ]]/v1/returns/details{{ range $i, $part := $query }}{{ if $i }}&{{ else }}?{{ end }}{{ $part }}{{ end }}
