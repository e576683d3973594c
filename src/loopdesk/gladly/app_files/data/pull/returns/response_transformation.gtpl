[% with item = "return", items = "returns" %][% include "_partials/with_facts.gtpl" %][% endwith %]
