"""A faithful simulator of Loop Returns (REST) and Loop Order Tracking (GraphQL + REST).

- `data.load_world(path)`: a World from the contract's sandbox data file.
- `seed.generate_world(seed, customers, now)`: a deterministic seeded World.
- `app.create_sandbox_app(settings, world)`: the ASGI app serving both APIs.
- `webhooks.configure_webhooks(app, url, secret)`: send signed Loop webhooks on changes.
"""
