[% with item = "order", items = "orders" %][% include "_partials/with_facts.gtpl" %][% endwith %]
