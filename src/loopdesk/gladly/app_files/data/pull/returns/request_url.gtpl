[% with stop_message = stop_messages.returns %][% include "_partials/lookup_url.gtpl" %][% endwith %]
