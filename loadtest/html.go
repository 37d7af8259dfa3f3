package main

func writeHTML(path string, r *Report) error { return nil }
