"""Road network: OSM import with an all-or-nothing switch-over (readers, importer, queries,
sources), routable graphs per travel mode (travel, graph) and isochrones built on them."""
