using Grpc.Core;
using MedSearch.Server;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

public sealed class InferenceGateTests
{
    [Fact]
    public async Task Requests_queue_for_a_slot_and_beyond_the_queue_are_refused_with_a_retry_hint()
    {
        var gate = new InferenceGate(new InferenceOptions { Concurrency = 1, Queue = 1, RetryAfter = TimeSpan.FromMilliseconds(250) });
        using var release = new ManualResetEventSlim();
        using var started = new ManualResetEventSlim();
        var running = gate.RunAsync(() => { started.Set(); release.Wait(); return 1; }, CancellationToken.None);
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)));
        var queued = gate.RunAsync(() => 2, CancellationToken.None);
        Assert.False(queued.IsCompleted);

        var refused = await Assert.ThrowsAsync<RpcException>(() => gate.RunAsync(() => 3, CancellationToken.None));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("busy", refused.Status.Detail);
        Assert.Equal("250", refused.Trailers.GetValue(InferenceGate.RetryAfterTrailer));

        release.Set();
        Assert.Equal(1, await running);
        Assert.Equal(2, await queued);
        Assert.Equal(4, await gate.RunAsync(() => 4, CancellationToken.None));
    }

    [Fact]
    public async Task A_cancelled_wait_gives_up_its_place_in_the_queue()
    {
        var gate = new InferenceGate(new InferenceOptions { Concurrency = 1, Queue = 1 });
        using var release = new ManualResetEventSlim();
        using var started = new ManualResetEventSlim();
        var running = gate.RunAsync(() => { started.Set(); release.Wait(); return 1; }, CancellationToken.None);
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)));

        using var cancel = new CancellationTokenSource();
        var waiting = gate.RunAsync(() => 2, cancel.Token);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        // Its place is free again: another request may queue.
        var queued = gate.RunAsync(() => 3, CancellationToken.None);
        release.Set();
        Assert.Equal(1, await running);
        Assert.Equal(3, await queued);
    }

    [Fact]
    public void Impossible_settings_are_refused_naming_the_setting()
    {
        Assert.Contains("concurrency", Assert.Throws<ArgumentOutOfRangeException>(() => new InferenceGate(new InferenceOptions { Concurrency = 0 })).Message);
        Assert.Contains("queue", Assert.Throws<ArgumentOutOfRangeException>(() => new InferenceGate(new InferenceOptions { Queue = -1 })).Message);
    }
}
