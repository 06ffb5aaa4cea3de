"""Infrastructure of the benchmark: servers, clients, /proc readings and reports."""
