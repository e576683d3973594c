{{- /* loopdesk's lookup already has the shapes of Gladly's Loop apps (a return's notes
       included); the customer's routing facts go on each [[ item ]]. */ -}}
{{- $facts := pick .rawData.facts[% for fact in facts %] [[ fact.name | gostring ]][% endfor %] -}}
[
{{- range $i, $[[ item ]] := .rawData.[[ items ]] }}
  {{- if $i }},{{ end }}
  {{ toJson (set $[[ item ]] "facts" $facts) }}
{{- end }}
]
