"""Loop's Draft Returns (Return Create API) in the sandbox.

`routes` serves the endpoints (reference `loop-draft-returns.md`) under every Loop
prefix, `control` the sandbox's own switches under `/_sandbox/`. A draft walks Loop's
states (`model`); what it allows is decided in one place (`links`); eligibility,
exchange catalogs and totals each have their module; a submit turns the draft into a
return of the world's returns list (`submit`) and sends its `return.created` webhook.
"""
