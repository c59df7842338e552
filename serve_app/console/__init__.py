"""The reviewer console: server-rendered pages at /console (no front-end build step)."""
