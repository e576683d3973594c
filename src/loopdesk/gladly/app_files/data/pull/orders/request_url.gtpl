[% with stop_message = stop_messages.orders %][% include "_partials/lookup_url.gtpl" %][% endwith %]
