"""CAGMH: the cross-modal model, its two losses against their formulas, the pair loaders and both mAP conventions."""

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from mh.data import ImagePool
from mh.family.cagmh import (
    CAGMH,
    RELEASED_PARAMETERS,
    VIT_B_32,
    build_clip,
    decode,
    load_openai_clip,
    tokenize,
)
from mh.family.cagmh_losses import ClassBalanceCentreLoss, MultimodalProxyLoss, hadamard_centres, proxy_threshold
from mh.family.mamba1 import Mamba1
from mh.family.paired_data import caption_for, dsph_split, load_dsph_pairs, synthetic_mosaics
from mh.metrics import crossmodal_map, mean_average_precision, released_crossmodal_map

TINY = {
    "image_size": 32,
    "embed_dim": 32,
    "patch_size": 16,
    "vision_width": 64,
    "vision_layers": 1,
    "text_width": 32,
    "text_heads": 2,
    "text_layers": 1,
    "hash_hidden": 64,
    "d_state": 4,
    "scan_backend": "reference",
}


def tiny_model(sequence_axis="modality", bits=16, seed=0):
    torch.manual_seed(seed)
    return CAGMH(bits, sequence_axis=sequence_axis, **TINY).eval()


def batch(size=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    captions = [caption_for([i % 10, (3 * i) % 10, 5, 5]) for i in range(size)]
    return torch.randn(size, 3, 32, 32, generator=generator), tokenize(captions)


def test_48_bits_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="power of two.*Hadamard"):
        CAGMH(48, **TINY)
    with pytest.raises(ValueError, match="power of two"):
        hadamard_centres(10, 48)


def test_tokenizer_round_trips_a_caption():
    caption = "a cat, a ship and two dogs"
    tokens = tokenize([caption])
    assert tokens.shape == (1, 32) and tokens[0, 0] == 49406 and 49407 in tokens[0]
    assert decode(tokens) == [caption]
    assert torch.equal(tokenize(decode(tokens)), tokens)
    long = tokenize(" ".join(["dog"] * 40))
    assert long[0, -1] == 49407 and decode(long) == [" ".join(["dog"] * 30)]  # cut so that the end token fits


def test_captions_name_the_mosaic_classes_in_reading_order():
    assert caption_for([3, 8, 5, 5]) == "a cat, a ship and two dogs"
    assert caption_for([4, 4, 4, 4]) == "four deer"
    assert caption_for([0, 1, 0, 2]) == "two airplanes, an automobile and a bird"


def test_default_codes_ignore_batch_neighbours_and_released_codes_do_not():
    images, tokens = batch()
    permutation = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        model = tiny_model("modality")
        codes, permuted = model(images, tokens), model(images[permutation], tokens[permutation])
        for original, shuffled in zip(codes, permuted, strict=True):
            torch.testing.assert_close(shuffled, original[permutation], rtol=0, atol=1e-6)
            assert torch.equal(shuffled.sign(), original[permutation].sign())
        released = tiny_model("batch")
        codes, permuted = released(images, tokens), released(images[permutation], tokens[permutation])
        assert (permuted[0] - codes[0][permutation]).abs().max() > 1e-4


def test_single_modality_encoders_match_the_paired_forward():
    images, tokens = batch()
    with torch.no_grad():
        model = tiny_model("modality")
        image_codes, text_codes = model(images, tokens)
        torch.testing.assert_close(model.encode_image(images), image_codes, rtol=0, atol=1e-6)
        torch.testing.assert_close(model.encode_text(tokens), text_codes, rtol=0, atol=1e-6)
        other_captions = tokenize(["a frog"] * len(images))
        torch.testing.assert_close(model(images, other_captions)[0], image_codes, rtol=0, atol=1e-6)
        pair = tiny_model("pair")
        torch.testing.assert_close(pair.encode_image(images), pair(images, tokens)[0], rtol=0, atol=1e-6)
        assert (pair(images, other_captions)[1] - pair(images, tokens)[1]).abs().max() > 1e-4
        with pytest.raises(ValueError, match="after its image"):
            pair.encode_text(tokens)
    with pytest.raises(ValueError, match="needs the paired captions"):
        tiny_model("batch").encode_image(images)


def test_clear_errors_on_bad_inputs():
    model = tiny_model()
    images, tokens = batch()
    with pytest.raises(ValueError, match=r"images \(B, 3, 32, 32\)"):
        model(images[:, :, :16], tokens)
    with pytest.raises(ValueError, match="tokenize"):
        model(images, tokens[:, :10])
    with pytest.raises(ValueError, match="one caption per image"):
        model(images, tokens[:3])
    with pytest.raises(ValueError, match="sequence_axis"):
        CAGMH(16, sequence_axis="time", **TINY)


def test_mamba_block_has_the_released_parameter_count():
    counts = {name: p.numel() for name, p in Mamba1(1024).named_parameters()}
    print(counts)
    assert sum(counts.values()) == 6_666_240
    assert counts["in_proj.weight"] == 4_194_304 and counts["x_proj.weight"] == 196_608


def test_full_size_parameters_differ_from_the_released_count_by_the_cut_text_positions():
    for bits in (16, 32, 64):
        with torch.device("meta"):
            model = CAGMH(bits)
        ours = sum(p.numel() for p in model.parameters())
        released = RELEASED_PARAMETERS[0] + RELEASED_PARAMETERS[1] * bits
        print(f"{bits} bits: ours {ours:,}, released {released:,}")
        assert released - ours == (77 - 32) * 512


def test_openai_clip_state_dict_loads_with_no_clip_key_missing(tmp_path):
    torch.manual_seed(0)
    reference = build_clip(*(VIT_B_32[k] for k in list(VIT_B_32)), 77)
    state = {k: v.half() for k, v in reference.state_dict().items()}
    state.update(
        {k: torch.tensor(v) for k, v in {"input_resolution": 224, "context_length": 77, "vocab_size": 49408}.items()}
    )
    path = tmp_path / "ViT-B-32-state.pt"
    torch.save(state, path)
    model = CAGMH(64, scan_backend="reference")
    report = load_openai_clip(model, path)
    print(report)
    assert not [k for k in report.missing if k.startswith("clip.")]
    assert report.unexpected == [] and report.shape_mismatched == []
    assert sorted({k.split(".")[0] for k in report.missing}) == ["image_hash", "mamba", "text_hash"]
    assert torch.equal(model.clip.positional_embedding, state["positional_embedding"][:32].float())


def direct_proxy_loss(v, t, labels, proxies, tau, alpha):
    """The proxy loss written element by element."""

    def to_proxies(codes):
        positive, negative, n_pos, n_neg = 0.0, 0.0, 0, 0
        for i in range(len(codes)):
            for c in range(len(proxies)):
                cosine = float(F.cosine_similarity(codes[i], proxies[c], dim=0))
                if labels[i, c] == 1:
                    positive, n_pos = positive + 1 - cosine, n_pos + 1
                else:
                    negative, n_neg = negative + max(cosine - tau, 0.0), n_neg + 1
        return positive / n_pos + negative / n_neg

    total = to_proxies(v) + to_proxies(t)
    multi = [i for i in range(len(labels)) if labels[i].sum() > 1]
    pairs = [(i, j) for i in multi for j in multi if float(labels[i] @ labels[j]) == 0]
    if pairs:
        for a, b in ((v, v), (t, t), (v, t)):
            terms = [max(float(F.cosine_similarity(a[i], b[j], dim=0)) - tau, 0.0) for i, j in pairs]
            total += alpha * sum(terms) / len(pairs)
    return total


def test_proxy_loss_equals_its_formula():
    generator = torch.Generator().manual_seed(1)
    v, t = torch.randn(6, 16, generator=generator), torch.randn(6, 16, generator=generator)
    labels = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 1]]).float()
    for tau in (0.0, 0.25):
        loss = MultimodalProxyLoss(4, 16, alpha=0.8, threshold=tau)
        expected = direct_proxy_loss(v, t, labels, loss.proxies.detach(), tau, 0.8)
        assert loss(v, t, labels).detach().item() == pytest.approx(expected, rel=1e-5)
    assert proxy_threshold(64, 24) == 0.0 and proxy_threshold(16, 80) == 0.25
    with pytest.raises(ValueError, match="threshold"):
        proxy_threshold(16, 40)


def test_class_balance_loss_equals_its_formula_and_fixes_the_cubic_sign():
    generator = torch.Generator().manual_seed(2)
    codes = torch.randn(5, 16, generator=generator)
    labels = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1]]).float()
    centres = hadamard_centres(3, 16)
    assert torch.equal(centres @ centres.t(), 16 * torch.eye(3))
    for cubic, sign in (("fixed", 1.0), ("released", -1.0)):
        loss = ClassBalanceCentreLoss(3, 16, lambda1=0.009, balance_weight=0.004, cubic=cubic)
        u = torch.tanh(codes)
        total = 0.0
        for i in range(5):
            score = labels[i] @ centres
            centre = [1.0 if (s > 0 or (s == 0 and loss.tie_bits[k] == 1)) else -1.0 for k, s in enumerate(score)]
            for k in range(16):
                total += max(1 - float(u[i, k]) * centre[k], 0.0) / 80
                total += 0.009 * (sign * (1 - abs(float(u[i, k])))) ** 3 / 80
        total += 0.004 * float((labels.mean(0) - 0.5).abs().mean())
        assert loss(codes, labels).detach().item() == pytest.approx(0.5 * total, rel=1e-5)


def test_released_convention_equals_the_project_one_without_distance_ties():
    generator = np.random.default_rng(3)
    bits = 16
    database = np.array([[-1] * k + [1] * (bits - k) for k in range(bits + 1)])[generator.permutation(bits + 1)]
    queries = np.ones((2, bits), dtype=int)  # distances 0 … 16 to the database: no ties
    db_labels = generator.integers(0, 2, (bits + 1, 3))
    db_labels[0] = [1, 0, 1]
    query_labels = np.array([[1, 0, 1], [0, 0, 0]])  # the second query has no relevant item: AP 0, counted
    project = mean_average_precision(queries, database, query_labels, db_labels)
    released = released_crossmodal_map(queries, database, query_labels, db_labels)
    assert released == pytest.approx(project) and 0 < project <= 0.5


def test_crossmodal_map_pairs_image_queries_with_database_texts():
    generator = np.random.default_rng(5)
    codes = {name: generator.choice([-1, 1], (n, 16)) for name, n in (("qi", 6), ("qt", 6), ("di", 20), ("dt", 20))}
    query_labels, db_labels = generator.integers(0, 2, (6, 4)), generator.integers(0, 2, (20, 4))
    for convention, score in (("project", mean_average_precision), ("released", released_crossmodal_map)):
        both = crossmodal_map(codes["qi"], codes["qt"], codes["di"], codes["dt"], query_labels, db_labels, convention)
        assert both["i2t"] == pytest.approx(score(codes["qi"], codes["dt"], query_labels, db_labels))
        assert both["t2i"] == pytest.approx(score(codes["qt"], codes["di"], query_labels, db_labels))


def write_dsph_folder(folder, cell_captions: bool):
    paths = np.array([f"images/{i}.jpg" for i in range(4)])
    scipy.io.savemat(folder / "index.mat", {"index": paths})
    captions = ["sky clouds", "dog", "people street night", "lake"]
    if cell_captions:
        scipy.io.savemat(folder / "caption.mat", {"caption": np.array(captions, dtype=object)})
    else:
        (folder / "caption.txt").write_text("\n".join(captions) + "\n")
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=np.uint8)
    scipy.io.savemat(folder / "label.mat", {"category": labels})
    return paths, captions, labels


@pytest.mark.parametrize("cell_captions", [True, False], ids=["mirflickr caption.mat", "nuswide caption.txt"])
def test_dsph_lists_load(tmp_path, cell_captions):
    paths, captions, labels = write_dsph_folder(tmp_path, cell_captions)
    pairs = load_dsph_pairs(tmp_path)
    assert pairs.captions == captions and np.array_equal(pairs.labels, labels)
    assert pairs.paths == [tmp_path / p for p in paths]
    split = dsph_split(len(pairs), query=1, train=2)
    assert set(split["train"]) <= set(split["database"]) and not set(split["query"]) & set(split["database"])


def test_dsph_lists_refuse_disagreeing_or_missing_files(tmp_path):
    write_dsph_folder(tmp_path, cell_captions=False)
    (tmp_path / "caption.txt").write_text("one\ntwo\n")
    with pytest.raises(ValueError, match="disagree"):
        load_dsph_pairs(tmp_path)
    (tmp_path / "label.mat").unlink()
    with pytest.raises(FileNotFoundError, match="label.mat"):
        load_dsph_pairs(tmp_path)
    scipy.io.savemat(tmp_path / "label.mat", {"labels": np.eye(4)})
    with pytest.raises(ValueError, match="no variable 'category'"):
        load_dsph_pairs(tmp_path)


def test_synthetic_mosaics_are_seeded_disjoint_and_labelled_by_their_tiles():
    generator = np.random.default_rng(0)
    arrays = generator.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    pool = ImagePool(labels=np.arange(60) % 10, source="test", arrays=arrays)
    parts = synthetic_mosaics(pool, {"train": 6, "query": 3, "database": 5}, seed=4)
    again = synthetic_mosaics(pool, {"train": 6, "query": 3, "database": 5}, seed=4)
    assert np.array_equal(parts["query"].arrays, again["query"].arrays)
    tiles = {
        part: {s.arrays[i, r : r + 32, c : c + 32].tobytes() for i in range(len(s)) for r in (0, 32) for c in (0, 32)}
        for part, s in parts.items()
    }
    assert not tiles["train"] & tiles["query"] and not tiles["query"] & tiles["database"]
    for sample in range(len(parts["train"])):
        mosaic = parts["train"].arrays[sample]
        classes = [
            int(np.flatnonzero([np.array_equal(mosaic[r : r + 32, c : c + 32], a) for a in arrays])[0] % 10)
            for r in (0, 32)
            for c in (0, 32)
        ]
        assert parts["train"].captions[sample] == caption_for(classes)
        assert set(np.flatnonzero(parts["train"].labels[sample])) == set(classes)
    with pytest.raises(ValueError, match="fewer mosaics"):
        synthetic_mosaics(pool, {"train": 16}, seed=0)


def test_a_one_tile_mosaic_is_the_image_itself_captioned_and_labelled_by_its_class():
    from mh.metrics import chance_map

    arrays = np.random.default_rng(4).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    pool = ImagePool(labels=np.arange(300) % 10, source="test", arrays=arrays)
    parts = synthetic_mosaics(pool, {"query": 40, "database": 200}, seed=5, tiles=1, relevance="class_set")
    assert parts["query"].arrays.shape == (40, 32, 32, 3) and parts["query"].labels.shape == (40, 10)
    for sample in range(5):
        source = int(np.flatnonzero([np.array_equal(parts["query"].arrays[sample], a) for a in arrays])[0])
        assert np.flatnonzero(parts["query"].labels[sample]).tolist() == [source % 10]
        assert parts["query"].captions[sample] == caption_for([source % 10])  # e.g. "a cat", "an airplane"
    assert 0.05 < chance_map(parts["query"].labels, parts["database"].labels) < 0.2  # one class of ten


def test_two_tile_mosaics_labelled_by_their_class_set_have_a_low_stated_chance_level():
    from mh.family.paired_data import class_sets
    from mh.metrics import chance_map

    generator = np.random.default_rng(1)
    arrays = generator.integers(0, 256, (400, 32, 32, 3), dtype=np.uint8)
    pool = ImagePool(labels=np.arange(400) % 10, source="test", arrays=arrays)
    parts = synthetic_mosaics(pool, {"query": 50, "database": 150}, seed=2, tiles=2, relevance="class_set")
    assert parts["query"].arrays.shape == (50, 32, 64, 3) and len(class_sets(2)) == 55
    for sample in range(5):
        shown = class_sets(2)[int(np.flatnonzero(parts["query"].labels[sample])[0])]
        left, right = (parts["query"].arrays[sample, :, c : c + 32] for c in (0, 32))
        tiles = [int(np.flatnonzero([np.array_equal(tile, a) for a in arrays])[0] % 10) for tile in (left, right)]
        assert shown == tuple(sorted(tiles)) and parts["query"].captions[sample] == caption_for(tiles)
    chance = chance_map(parts["query"].labels, parts["database"].labels)
    assert chance < 0.06  # same set of two classes out of 55: about 0.02 on a large database
    with pytest.raises(ValueError, match="tiles must be one of"):
        synthetic_mosaics(pool, {"query": 2}, tiles=3)
