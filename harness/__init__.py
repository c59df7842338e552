"""The real processes that the tests and the benchmarks both start: a redis-server, the app deployed as
`serve deploy` does, a scripted OpenAI-compatible upstream. Neither tests/ nor bench/ imports the other."""
