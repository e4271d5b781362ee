"""Shared-memory structures for pre-forked processes, knowing nothing of their use.

A `Segment` is one POSIX shared-memory mapping created by a parent before it forks;
children inherit it. On top of its bytes: a slot table (`slots`), single-writer metric
cells (`cells`), single-producer/single-consumer rings (`ring`), striped locks with
owner stamps (`locks`), a fixed-capacity keyed table for multi-writer records
(`table`) and a double-buffered seqlocked page (`page`). `layout` computes where each
region lives.
"""
