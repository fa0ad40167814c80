// Placeholder replaced by the addon build (see native/README).
