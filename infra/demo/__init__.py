"""`lienthong demo`: the seed scenario run end to end on the real services.

scenario: certificates, topics, the router and subscribers in process, the seed documents and
reports sent, forged and misaddressed ones refused, the summary printed (run_demo); also the
pieces `lienthong generate` reuses (ScenarioClock, VN, wait_for_statuses). archive: the archive,
audit and paperless-share part of the demo. console: the demo account, and the console left
running on the demo's archive. Public names: run_demo, ScenarioClock, VN,
wait_for_statuses.
"""
