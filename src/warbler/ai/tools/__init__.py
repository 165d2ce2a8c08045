"""Tools for AI bots: built-ins, admin-defined HTTP tools and MCP servers, one registry."""
