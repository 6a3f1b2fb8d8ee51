using Microsoft.ML.SDfp.Numerics.Quantization;

namespace Microsoft.ML.SDfp.Numerics.Layers;

/// <summary>Carries a quantiser (or null) through <c>AutogradContext.save_data</c>, which stores objects by key.</summary>
internal sealed record QuantizerBox(TensorQuantizer? Quantizer);
