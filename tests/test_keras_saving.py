"""model.save / load_model: one zip of JSON + .npy, round trip, corrupt/truncated/mismatched
files give ValueError naming the file, atomic writes, never unpickles."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

from poolkit import keras
from poolkit.keras import layers as L


def _model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([
        L.Conv2D(4, (3, 3), activation="relu", input_shape=(10, 10, 1)),
        L.MaxPooling2D(pool_size=(2, 2), strides=2),
        L.Dropout(0.1),
        L.Flatten(),
        L.Dense(3, activation="softmax"),
    ])
    m.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _data(n=20):
    rng = np.random.default_rng(1)
    return rng.random((n, 10, 10, 1)).astype(np.float32), rng.integers(0, 3, n)


def test_round_trip(tmp_path):
    m = _model()
    x, y = _data()
    m.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.poolkit"
    m.save(path)
    assert zipfile.is_zipfile(path)
    m2 = keras.models.load_model(path)
    assert [type(a).__name__ for a in m2.layers] == [type(a).__name__ for a in m.layers]
    for a, b in zip(m.get_weights(), m2.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.predict(x, verbose=0), m2.predict(x, verbose=0))
    assert m2.evaluate(x, y, verbose=0) == m.evaluate(x, y, verbose=0)
    assert isinstance(m2.optimizer, keras.optimizers.SGD) and m2.optimizer.momentum == 0.5
    m2.fit(x, y, epochs=1, verbose=0)  # the loaded model trains
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        cfg = json.loads(zf.read("config.json"))
    assert "config.json" in names and all(n.endswith(".npy") for n in names if n != "config.json")
    assert cfg["model"]["layers"][0]["class_name"] == "Conv2D"


def test_get_set_weights_checks_shapes():
    m = _model()
    w = m.get_weights()
    assert [a.shape for a in w] == [(3, 3, 1, 4), (4,), (64, 3), (3,)]
    m.set_weights([a + 1 for a in w])
    np.testing.assert_array_equal(m.get_weights()[0], w[0] + 1)
    with pytest.raises(ValueError, match="shape"):
        m.set_weights([w[0][..., :2], *w[1:]])
    with pytest.raises(ValueError, match="4 weight arrays"):
        m.set_weights(w[:3])


def _rewrite(path, config=None, drop=None, replace=None):
    """Copy the saved zip with its config edited / a member dropped or replaced."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if config is not None:
        members["config.json"] = config(json.loads(members["config.json"]))
    if drop:
        del members[drop]
    if replace:
        members.update(replace)
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data if isinstance(data, bytes) else json.dumps(data))


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _set_layer(cfg, **kw):
    cfg["model"]["layers"][0].update(kw)
    return cfg


@pytest.mark.parametrize(
    "corrupt,words",
    [
        (lambda p: p.write_bytes(b"hello, not a zip"), "not a zip"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a zip|corrupt"),
        (lambda p: p.write_bytes(b""), "not a zip"),
        (lambda p: _rewrite(p, replace={"config.json": b"{not json"}), "not valid JSON"),
        (lambda p: _rewrite(p, drop="config.json"), "no config.json"),
        (lambda p: _rewrite(p, config=lambda c: _set_layer(c, class_name="Lambda")),
         "unknown layer type 'Lambda'"),
        (lambda p: _rewrite(p, config=lambda c: {**c, "format": "other"}), "does not describe"),
        (lambda p: _rewrite(p, config=lambda c: {**c, "version": 99}), "version"),
        (lambda p: _rewrite(p, config=lambda c: _set_layer(
            c, config={**c["model"]["layers"][0]["config"], "filters": 5})), "shape"),
        (lambda p: _rewrite(p, config=lambda c: _set_layer(
            c, config={**c["model"]["layers"][0]["config"], "evil": 1})), "bad layer"),
        (lambda p: _rewrite(p, drop="weights/0001.npy"), "missing array"),
        (lambda p: _rewrite(p, replace={"weights/0000.npy": _npy(np.zeros((3, 3, 1, 5)))}),
         "has shape"),
        (lambda p: _rewrite(p, replace={"weights/0000.npy": b"garbage"}), "not a valid .npy"),
        # An object array would need unpickling: refused.
        (lambda p: _rewrite(p, replace={"weights/0001.npy": _npy(np.array([{}, 1, 2, 3],
                                                                          dtype=object))}),
         "not a valid .npy"),
    ],
)
def test_corrupt_files_raise_value_error_naming_the_file(tmp_path, corrupt, words):
    _check_load_refuses(tmp_path, corrupt, words)


def _check_load_refuses(tmp_path, corrupt, words):
    """Save a model, damage the file with ``corrupt``, and expect load_model's ValueError
    matching ``words`` and naming the file."""
    path = tmp_path / "m.poolkit"
    _model().save(path)
    corrupt(path)
    with pytest.raises(ValueError, match=words) as ei:
        keras.models.load_model(path)
    assert str(path) in str(ei.value)


def _npy_header(descr: str, shape: str, payload: bytes = b"") -> bytes:
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}".ljust(118)
    return b"\x93NUMPY\x01\x00" + (119).to_bytes(2, "little") + header.encode() + b"\n" + payload


def _damage_deflate(p):
    """Flip bytes inside the deflate stream of weights/0000.npy (its CRC is then wrong too)."""
    _rewrite(p)  # rewritten deflated, as saved
    data = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as zf:
        info = zf.getinfo("weights/0000.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 2, start + 12):
        data[i] ^= 0x5A
    p.write_bytes(bytes(data))


def _set_flag(p, member: str, flag: int, method: int | None = None, version: int | None = None):
    """Set a flag bit (and the compression method, the version needed to extract) of
    ``member``'s central directory entry, which is what zipfile reads them from."""
    data = bytearray(p.read_bytes())
    off = data.index(b"PK\x01\x02")
    while data[off + 46:off + 46 + len(member)] != member.encode():
        off = data.index(b"PK\x01\x02", off + 4)
    data[off + 8] |= flag
    if method is not None:
        data[off + 10:off + 12] = method.to_bytes(2, "little")
    if version is not None:
        data[off + 6] = version
    p.write_bytes(bytes(data))


# Found by the fuzz harness: each of these escaped load_model as another exception (zlib.error,
# RuntimeError, NotImplementedError when reading or opening, MemoryError, IsADirectoryError).
@pytest.mark.parametrize(
    "corrupt,words",
    [
        (_damage_deflate, "corrupt"),
        (lambda p: _set_flag(p, "config.json", 0x1), "corrupt.*encrypted"),
        (lambda p: _set_flag(p, "config.json", 0, method=99), "corrupt.*NotImplementedError"),
        (lambda p: _set_flag(p, "config.json", 0, version=209), "not a zip"),
        (lambda p: _rewrite(p, replace={"weights/0000.npy": _npy_header("'<f4'", "(10**12,)")}),
         "not a valid .npy"),
        (lambda p: _rewrite(p, replace={
            "weights/0000.npy": _npy_header("'<f4'", f"({10**12},)", bytes(64))}),
         "not a valid .npy.*bytes follow"),
        (lambda p: _rewrite(p, replace={
            "weights/0000.npy": _npy_header("'<f4'", f"({2**62}, {2**62})", bytes(64))}),
         "not a valid .npy"),
        (lambda p: (p.unlink(), p.mkdir()), "directory"),
    ],
)
def test_damaged_members_and_lying_headers_raise_value_error(tmp_path, corrupt, words):
    _check_load_refuses(tmp_path, corrupt, words)


def test_an_oversized_member_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from poolkit.keras import saving

    path = tmp_path / "m.poolkit"
    _model().save(path)
    monkeypatch.setattr(saving, "MAX_ARRAY_BYTES", 100)
    with pytest.raises(ValueError, match="declares .* bytes, more than the 100"):
        keras.models.load_model(path)


def test_truncated_tail_is_detected(tmp_path):
    path = tmp_path / "m.poolkit"
    _model().save(path)
    data = path.read_bytes()
    for cut in (len(data) - 10, len(data) - 200, 100):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=str(path).replace(".", r"\.")):
            keras.models.load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        keras.models.load_model(tmp_path / "nope.poolkit")


def test_crash_mid_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.poolkit"
    m = _model()
    m.save(path)
    before = path.read_bytes()
    calls = {"n": 0}
    real_save = np.save

    def failing_save(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (simulated)")
        return real_save(*a, **kw)

    monkeypatch.setattr(np, "save", failing_save)
    m.set_weights([w + 1 for w in m.get_weights()])
    with pytest.raises(OSError, match="simulated"):
        m.save(path)
    assert calls["n"] == 2
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.poolkit"]  # no temp file left behind
    keras.models.load_model(path)  # still loads
