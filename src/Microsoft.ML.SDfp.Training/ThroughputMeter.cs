using System.Diagnostics;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Training throughput and time left: counts only the steps themselves, so that validation and the callbacks of
/// <see cref="ImageClassifierTrainer.StepCompleted"/> do not make training look slower than it is.
/// </summary>
internal sealed class ThroughputMeter
{
    private readonly Stopwatch _steps = new();
    private long _stepsRun;
    private long _epochImages;
    private TimeSpan _stepStart;

    /// <summary>Time spent in this epoch's steps.</summary>
    public TimeSpan EpochTime { get; private set; }

    /// <summary>Images per second of this epoch's steps so far.</summary>
    public double ImagesPerSecond => PerSecond(_epochImages);

    public void StartEpoch()
    {
        EpochTime = TimeSpan.Zero;
        _epochImages = 0;
    }

    public void StartStep()
    {
        _stepStart = _steps.Elapsed;
        _steps.Start();
    }

    public void EndStep(long images)
    {
        _steps.Stop();
        _stepsRun++;
        _epochImages += images;
        EpochTime += _steps.Elapsed - _stepStart;
    }

    /// <summary><paramref name="images"/> over this epoch's step time.</summary>
    public double PerSecond(long images) => images / Math.Max(EpochTime.TotalSeconds, 1e-9);

    /// <summary>Estimated time for <paramref name="remainingSteps"/> more steps at the mean step time so far.</summary>
    public TimeSpan Eta(long remainingSteps) => TimeSpan.FromSeconds(_steps.Elapsed.TotalSeconds / _stepsRun * remainingSteps);
}
