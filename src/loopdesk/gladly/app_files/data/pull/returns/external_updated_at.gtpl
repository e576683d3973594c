{{- .updatedAt -}}
