"""Files we hand to people and their spreadsheet programs (CSV); pure, no web framework."""
