"""Signal tracks: subsampling, binning, windows, Hilbert layout, peak calling, simulation."""
