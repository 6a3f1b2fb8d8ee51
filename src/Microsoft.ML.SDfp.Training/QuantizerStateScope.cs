using System.Text;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Telemetry;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Sets the quantisers of some layers aside while extra forward passes run (batch-norm re-estimation, evaluation in
/// train mode): telemetry is paused, and on dispose every quantiser's history, exponent and rounding stream are put
/// back, so that training goes on as if the passes had not happened.
/// </summary>
internal sealed class QuantizerStateScope : IDisposable
{
    private readonly List<IQuantizedLayer> _layers;
    private readonly List<QuantizationTelemetry?> _telemetry;
    private readonly MemoryStream _state = new();

    public QuantizerStateScope(IEnumerable<IQuantizedLayer> layers)
    {
        _layers = layers.ToList();
        using (var writer = new BinaryWriter(_state, Encoding.UTF8, leaveOpen: true))
            TrainingCheckpoint.WriteQuantizers(writer, _layers);
        _telemetry = _layers.Select(l => l.Telemetry).ToList();
        foreach (var layer in _layers)
            layer.Telemetry = null;
    }

    public void Dispose()
    {
        for (var i = 0; i < _layers.Count; i++)
            _layers[i].Telemetry = _telemetry[i];
        _state.Position = 0;
        using var reader = new BinaryReader(_state);
        TrainingCheckpoint.ReadQuantizers(reader, _layers);
    }
}
