"""Stand-ins for services PRISM cannot reach in tests; each speaks the real protocol on a real socket."""
