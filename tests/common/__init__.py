"""Tests of services.common, the plumbing every service shares."""
