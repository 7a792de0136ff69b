import numpy as np
import tifffile

from txmorph.export.ometiff import pyramid_levels, write_ome_tiff


def test_pyramidal_ome_tiff_with_class_channels(tmp_path):
    probabilities = np.random.default_rng(0).dirichlet([1, 1, 1, 1], size=(600, 520)).transpose(2, 0, 1)
    classes = ["background", "tissue", "Prox1", "Mbp"]
    path = tmp_path / "map.ome.tif"
    write_ome_tiff(path, probabilities.astype(np.float32), classes, pixel_size_um=4.0)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        series = tif.series[0]
        assert series.shape == (4, 600, 520)
        assert len(series.levels) == 1 + pyramid_levels((600, 520)) == 2
        assert series.levels[1].shape == (4, 300, 260)
        full = series.asarray()
        assert np.abs(full / 255 - probabilities).max() <= 0.5 / 255 + 1e-6
        names = [c.get("Name") for c in tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]["Channel"]]
        assert names == classes
