"""The example chains in resources/chains run and do what their names promise."""

from __future__ import annotations

import numpy as np
import pytest

import medview
from medview.core.labelmap import LabelMap
from medview.core.table import Table
from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.resources import resources_dir
from phantoms import (
    ct_phantom_volume,
    default_origin_lps,
    pet_phantom_volume,
    phantom_lesions,
)

CHAINS = resources_dir() / "chains"
SHAPE, SPACING = (40, 96, 96), (3.7, 3.7, 7.5)  # a whole chest/abdomen phantom, coarse


@pytest.fixture(scope="module")
def ct() -> Volume:
    arr = ct_phantom_volume(SHAPE, SPACING, seed=1)
    origin = default_origin_lps(SHAPE, SPACING, (1, 0, 0, 0, 1, 0))
    return Volume(arr, SPACING, origin, np.eye(3), {"Modality": "CT"})


def test_every_example_chain_is_valid():
    names = sorted(p.name for p in CHAINS.glob("*.json"))
    assert names == ["ct_denoise_lung_threshold.json", "mr_edge_map.json",
                     "pet_ct_fusion.json", "scribble_classifier.json", "seed_examples.json"]
    for p in CHAINS.glob("*.json"):
        chain = Chain.load(p)
        assert chain.name and chain.description
        assert Chain.from_dict(chain.to_dict()).to_dict() == chain.to_dict()


def test_ct_denoise_lung_threshold_finds_two_lungs(ct):
    result = run_chain(Chain.load(CHAINS / "ct_denoise_lung_threshold.json"), {"image": ct})
    lungs = result.result
    assert isinstance(lungs, LabelMap) and lungs.same_grid(ct)
    table = result.values["lungs.table"]
    assert isinstance(table, Table) and len(table) == 2
    volumes = sorted(table.column("volume_ml"))
    assert all(v > 100 for v in volumes)  # adult lungs, even a phantom's: litres, not drops
    # the segmented voxels are lung-like in the original CT
    assert np.median(ct.array[lungs.array > 0]) < -600


def test_mr_edge_map_on_real_mr(data_dir):
    mr = medview.load(data_dir / "dcm_qa_decubitus" / "In" / "HFS" / "3_t1_fl2d_sag")
    result = run_chain(Chain.load(CHAINS / "mr_edge_map.json"), {"image": mr})
    gradient, edges = result.values["gradient"], result.values["edges"]
    assert gradient.same_grid(mr) and float(gradient.array.min()) >= 0
    assert set(np.unique(edges.array)) <= {0, 1}
    # edges lie where the gradient is strong
    assert gradient.array[edges.array > 0].mean() > 3 * gradient.array.mean()


def test_pet_ct_fusion_shows_hot_lesions_over_ct(ct):
    pet = pet_phantom_volume(SHAPE, SPACING, ct.origin, seed=1)
    result = run_chain(Chain.load(CHAINS / "pet_ct_fusion.json"), {"image": ct, "moving": pet})
    fused = result.result
    assert fused.is_rgb and fused.array.dtype == np.uint8 and fused.shape == ct.shape
    assert result.values["pet_on_ct"].same_grid(ct)
    # the 'hot' map runs black → red → yellow → white: warm colours where there is uptake
    rgb = fused.array.astype(int)
    warm = (rgb[..., 0] > rgb[..., 2] + 40).mean()
    assert warm > 0.05, f"only {warm:.1%} of the voxels are warm"
    # the hottest lesion is brighter than the CT alone shows it (soft tissue, mid gray)
    lesion = max(phantom_lesions(SHAPE, SPACING), key=lambda les: les.suv)
    z, y, x = lesion.center_zyx
    gray = np.clip((ct.array[z, y, x] - (40 - 200)) / 400 * 255, 0, 255)
    assert rgb[z, y, x].mean() > gray + 40


def test_scribble_classifier_separates_lung_from_body(ct):
    truth = (ct.array < -500) & (ct.array > -950)
    body = ct.array > -200
    outside = ct.array < -970
    scribbles = np.zeros(ct.shape, np.uint8)
    for z in (10, 25):  # a few painted slices only: lung, body, air around the patient
        scribbles[z][truth[z]] = 1
        scribbles[z][body[z]] = 2
        scribbles[z][outside[z]] = 3
    labels = LabelMap.like(ct, scribbles)
    result = run_chain(Chain.load(CHAINS / "scribble_classifier.json"),
                       {"image": ct, "scribbles": labels})
    seg = result.result.array
    lung_pred = seg == 1
    dice = 2 * (lung_pred & truth).sum() / (lung_pred.sum() + truth.sum())
    assert dice > 0.85, f"Dice {dice:.3f}"
