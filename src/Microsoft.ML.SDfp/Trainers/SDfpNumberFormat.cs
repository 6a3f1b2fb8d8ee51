using Microsoft.ML.SDfp.Numerics.Quantization;

namespace Microsoft.ML.SDfp.Trainers;

/// <summary>The number format in which the body of the network is trained and scored.</summary>
public enum SDfpNumberFormat
{
    /// <summary>Plain 32-bit floating point everywhere (the reference).</summary>
    Fp32,

    /// <summary>Dynamic fixed point: n-bit integers with one exponent per tensor, no shift (S-DFP with s = 0).</summary>
    Dfp,

    /// <summary>Shifted dynamic fixed point: DFP whose exponent is lowered by a per-role shift s.</summary>
    SDfp,

    /// <summary>S-DFP whose shift is chosen per tensor and step from a candidate range.</summary>
    AutoShift,
}
