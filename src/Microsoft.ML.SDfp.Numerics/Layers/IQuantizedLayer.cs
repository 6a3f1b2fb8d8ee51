using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using TorchSharp.Modules;

namespace Microsoft.ML.SDfp.Numerics.Layers;

/// <summary>
/// What every quantised layer (<see cref="QuantizedConv2d"/>, <see cref="QuantizedLinear"/>) offers to the code that
/// configures, observes or freezes a whole network, so that code need not know the layer types.
/// </summary>
public interface IQuantizedLayer
{
    /// <summary>Layer name for telemetry and errors, e.g. "layer1.0.conv1".</summary>
    string LayerName { get; }

    /// <summary>The FP32 master weights.</summary>
    Parameter weight { get; }

    /// <summary>Quantisation per role; setting it validates it and restarts the role streams.</summary>
    QuantizationConfig Config { get; set; }

    /// <summary>Statistics sink, or null.</summary>
    QuantizationTelemetry? Telemetry { get; set; }

    /// <summary>Whether the forward GEMM is exact in FP32 under the current <see cref="Config"/>.</summary>
    bool IsForwardExact { get; }

    /// <summary>The quantiser of <paramref name="role"/>, or null when that role is FP32.</summary>
    /// <param name="role">The tensor role.</param>
    TensorQuantizer? Quantizer(TensorRole role);
}
