"""int8 quantisation (onnxruntime QDQ, OpenVINO NNCF) and the fp32 runtimes of litv2_nano at two sizes: parity
thresholds, dynamic sizes, calibration sources and clear errors (missing runtime, bad input)."""

from __future__ import annotations

import importlib
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from hilovit.data import FASHION_MNIST_ROOT
from hilovit.export import quantize, to_onnx
from hilovit.export.calibration import ImageSource
from hilovit.export.fidelity import fidelity, run_batches
from hilovit.export.runtimes import MissingRuntimeError, require, runtime_runner
from hilovit.export.sensitivity import node_groups, sensitivity
from hilovit.export.signal_stack import kept_signal_stack
from hilovit.models import create_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
openvino = pytest.importorskip("openvino")
pytest.importorskip("nncf")

# two sizes through one dynamic graph: the export size and a non-square one with other padding
SIZES = [(32, 32), (33, 45)]


def write_images(folder, count: int, seed: int = 0) -> None:
    """Smooth RGB images (upsampled 4x4 noise) of varying sizes: structure, not white noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        small = (rng.random((4, 4, 3)) * 255).astype(np.uint8)
        side = int(rng.integers(30, 50))
        Image.fromarray(small).resize((side, side + 3), Image.BILINEAR).save(folder / f"{index:03d}.png")


@pytest.fixture(scope="module", autouse=True)
def _signal_stack_kept():
    """The OpenVINO runners of these tests overlap; their release must not leave a dangling signal stack to the
    rest of the session (see hilovit.export.signal_stack)."""
    with kept_signal_stack():
        yield


@pytest.fixture(scope="module")
def nano(tmp_path_factory):
    """litv2_nano (random weights), its ONNX file (exported once for the module), calibration batches (8 images)
    and evaluation inputs (8 other images) at each size."""
    folder = tmp_path_factory.mktemp("quantize")
    write_images(folder / "images", 16)
    torch.manual_seed(0)
    model = create_model("litv2_nano").eval()
    calibration = ImageSource(folder / "images", img_size=32).calibration(8).batches(4)
    path = to_onnx(model, calibration[0][:2], folder / "nano.onnx", check=False).path
    inputs = {}
    for height, width in SIZES:
        source = ImageSource(folder / "images", img_size=max(height, width))
        images = source.evaluation(8, 8).images[..., :height, :width]
        inputs[height, width] = [images[:4].contiguous(), images[4:].contiguous()]
    references = {size: run_batches(model, batches) for size, batches in inputs.items()}
    return {"model": model, "path": path, "calibration": calibration, "inputs": inputs, "references": references}


#: runtime -> (module, function) of its quantiser
QUANTIZERS = {"onnxruntime": ("onnxruntime.quantization", "quantize_static"), "openvino": ("nncf", "quantize")}


@pytest.fixture(scope="module", params=list(QUANTIZERS))
def int8(request, nano, tmp_path_factory):
    """(runtime, folder, its int8 model of nano.onnx), quantised once per runtime for the module: from relative
    paths in ``folder`` as the working directory, while the quantiser also writes a scratch file to a relative path
    (as ONNX Runtime's failed symbolic shape inference does with sym_shape_infer_temp.onnx and a <uuid>.data)."""
    runtime = request.param
    module_name, name = QUANTIZERS[runtime]
    module = importlib.import_module(module_name)
    real = getattr(module, name)

    def scribbling(*args, **kwargs):
        with open("sym_shape_infer_temp.onnx", "wb") as scratch:  # a library step writing to a relative path
            scratch.write(b"scratch")
        return real(*args, **kwargs)

    folder = tmp_path_factory.mktemp(f"int8_{runtime}")
    shutil.copy(nano["path"], folder / "nano.onnx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, scribbling)
        patch.chdir(folder)
        quantized = quantize("nano.onnx", nano["calibration"], runtime=runtime)  # relative paths in and out
    return runtime, folder, quantized


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_fp32_runtimes_match_pytorch_at_two_sizes(nano, runtime):
    run = runtime_runner(runtime, nano["path"], threads=1)
    for size in SIZES:
        result = fidelity(nano["references"][size], run_batches(run, nano["inputs"][size]))
        assert result.max_abs_diff <= 1e-4, (runtime, size, result)
        assert result.top1_agreement == 100.0


# int8 of a random-weight model: close to fp32, not equal to it (the logits of random weights are nearly tied, so
# top-1 agreement is not asserted; the cosine of the logits is).
def test_int8_keeps_dynamic_sizes_and_stays_close(nano, int8):
    runtime, _, quantized = int8
    assert quantized.runtime == runtime and quantized.path.suffix == (".onnx" if runtime == "onnxruntime" else ".xml")
    assert quantized.dynamic_sizes
    assert all(file.is_file() for file in quantized.files)
    assert quantized.size_bytes < 0.6 * nano["path"].stat().st_size  # int8 weights
    run = runtime_runner(runtime, quantized.path, threads=1)
    for size in SIZES:
        result = fidelity(nano["references"][size], run_batches(run, nano["inputs"][size]))
        assert 0.99 <= result.cosine < 1 - 1e-7, (runtime, size, result)
        assert result.max_abs_diff > 1e-4  # it really is quantised


def test_quantisation_leaves_the_working_directory_clean(int8):
    """Scratch files the quantisers write to relative paths land in a temporary directory, not in the caller's."""
    _, folder, quantized = int8
    assert sorted(path.name for path in folder.iterdir()) == sorted(["nano.onnx", *(f.name for f in quantized.files)])
    assert all(file.parent == folder for file in quantized.files)


def test_onnxruntime_int8_quantizes_only_the_requested_op_types(nano, tmp_path):
    import onnx

    quantized = quantize(nano["path"], nano["calibration"], tmp_path / "conv_only.onnx", op_types=("Conv",))
    graph = onnx.load(str(quantized.path)).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    int8_inputs_of = {node.op_type for node in graph.node if dequantized & set(node.input)}
    assert "Conv" in int8_inputs_of
    assert not int8_inputs_of & {"MatMul", "Gemm", "Softmax", "LayerNormalization"}


def test_sensitivity_covers_the_litv2_parts(nano):
    groups = node_groups(nano["path"])
    assert {"linear layers", "attention products", "layer norms", "softmax", "DTM sampling"} <= set(groups)
    size = SIZES[0]
    results = sensitivity(nano["path"], nano["calibration"][:1], nano["inputs"][size], nano["references"][size])
    assert {result.group for result in results} == set(groups)
    cosines = [result.fidelity.cosine for result in results]
    assert cosines == sorted(cosines)  # worst first
    assert all(0.9 < cosine <= 1.0 + 1e-9 for cosine in cosines)


@pytest.mark.skipif(not FASHION_MNIST_ROOT.is_dir(), reason="Fashion-MNIST is not installed")
def test_bundled_calibration_is_disjoint_from_evaluation():
    source = ImageSource(None, img_size=16, in_chans=3)
    calibration, evaluation = source.calibration(4), source.evaluation(6, 4)
    assert calibration.images.shape == (4, 3, 16, 16) and evaluation.images.shape == (6, 3, 16, 16)
    assert evaluation.labels is not None and len(evaluation.labels) == 6
    assert not any(torch.equal(a, b) for a in calibration.images for b in evaluation.images)


def test_folder_calibration_splits_the_files(tmp_path):
    write_images(tmp_path, 5)
    source = ImageSource(tmp_path, img_size=8, in_chans=1)
    assert source.calibration(3).images.shape == (3, 1, 8, 8)
    assert source.evaluation(None, 3).images.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="has 5 images: too few for evaluation"):
        source.evaluation(4, 3)


def test_bad_input_is_named(nano, tmp_path):
    with pytest.raises(ValueError, match="unknown int8 runtime 'tensorrt'"):
        quantize(nano["path"], nano["calibration"], runtime="tensorrt")
    with pytest.raises(ValueError, match="calibration must be a non-empty sequence"):
        quantize(nano["path"], [])
    with pytest.raises(FileNotFoundError, match="no ONNX file at"):
        quantize(tmp_path / "missing.onnx", nano["calibration"])
    with pytest.raises(ValueError, match=r"must end in \.xml"):
        quantize(nano["path"], nano["calibration"], tmp_path / "model.onnx", runtime="openvino")
    with pytest.raises(FileNotFoundError, match="no image files under"):
        ImageSource(tmp_path, img_size=8)
    with pytest.raises(ValueError, match="in_chans must be 1"):
        ImageSource(None, img_size=8, in_chans=4)


@pytest.mark.parametrize(("package", "runtime"), [("openvino", "openvino"), ("nncf", "openvino")])
def test_missing_runtime_names_the_package(nano, monkeypatch, package, runtime):
    monkeypatch.setitem(sys.modules, package, None)  # `import openvino` now raises ImportError
    with pytest.raises(MissingRuntimeError, match=rf"{package} is not installed.*pip install 'hilovit\[deploy\]'"):
        require(package)
    with pytest.raises(MissingRuntimeError, match=f"{package} is not installed"):
        quantize(nano["path"], nano["calibration"], runtime=runtime)
