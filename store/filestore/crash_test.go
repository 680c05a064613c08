package filestore_test

func maybeRunCrashChild() {}
