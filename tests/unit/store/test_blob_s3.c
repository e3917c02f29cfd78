/*
 * Unit tests of S3 addressing and error documents (src/store/blob_s3.c):
 * bucket and prefix rules, path-style URLs for an endpoint and AWS's own
 * otherwise, the region's defaults, the credentials from the environment,
 * and the words of an error document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store/blob_s3.h"

#define DIGEST "sha256:860086a332b37893acfca85365459f4d6702d94d2e553cd22159f56098357d86"

static int with_credentials(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret/key+x", 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_REGION");
    return 0;
}

static void addressing(void **state)
{
    (void)state;
    blob_s3 s;
    rouse_errbuf eb = {0};
    char url[600];
    assert_int_equal(blob_s3_parse("s3://my-bucket/a//b", "http://127.0.0.1:9000/", NULL, &s,
                                   &eb),
                     ROUSE_EINVAL); /* "//" inside */
    assert_int_equal(blob_s3_parse("s3://my-bucket/team/models/", "http://127.0.0.1:9000/", NULL,
                                   &s, &eb),
                     0);
    assert_string_equal(s.prefix, "team/models");
    assert_string_equal(s.region, "us-east-1");
    assert_string_equal(s.sigv4, "aws:amz:us-east-1:s3");
    assert_string_equal(s.userpwd, "AKID:secret/key+x");
    assert_int_equal(blob_s3_object_url(&s, DIGEST, url, sizeof(url)), 0);
    assert_string_equal(url, "http://127.0.0.1:9000/my-bucket/team/models/sha256/"
                             "860086a332b37893acfca85365459f4d6702d94d2e553cd22159f56098357d86");
    assert_int_equal(blob_s3_object_url(&s, "sha256:nothex", url, sizeof(url)), ROUSE_EINVAL);
    blob_s3_describe(&s, url, sizeof(url));
    assert_string_equal(url, "s3://my-bucket/team/models");

    /* AWS's own endpoint, the region from the environment. */
    setenv("AWS_REGION", "eu-west-3", 1);
    assert_int_equal(blob_s3_parse("s3://b12", NULL, NULL, &s, &eb), 0);
    assert_int_equal(blob_s3_object_url(&s, DIGEST, url, sizeof(url)), 0);
    assert_string_equal(url, "https://b12.s3.eu-west-3.amazonaws.com/sha256/"
                             "860086a332b37893acfca85365459f4d6702d94d2e553cd22159f56098357d86");
    /* --s3-region wins over it. */
    assert_int_equal(blob_s3_parse("s3://b12", NULL, "ap-south-1", &s, &eb), 0);
    assert_string_equal(s.sigv4, "aws:amz:ap-south-1:s3");
}

static void refusals(void **state)
{
    (void)state;
    blob_s3 s;
    rouse_errbuf eb = {0};
    assert_int_equal(blob_s3_parse("s3://Upper", NULL, NULL, &s, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "bucket name"));
    assert_int_equal(blob_s3_parse("s3://ab", NULL, NULL, &s, &eb), ROUSE_EINVAL);
    assert_int_equal(blob_s3_parse("s3://-abc", NULL, NULL, &s, &eb), ROUSE_EINVAL);
    assert_int_equal(blob_s3_parse("http://abc", NULL, NULL, &s, &eb), ROUSE_EINVAL);
    assert_int_equal(blob_s3_parse("s3://abc/a b", NULL, NULL, &s, &eb), ROUSE_EINVAL);
    assert_int_equal(blob_s3_parse("s3://abc/%2e", NULL, NULL, &s, &eb), ROUSE_EINVAL);
    assert_int_equal(blob_s3_parse("s3://abc", NULL, "us east", &s, &eb), ROUSE_EINVAL);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(blob_s3_parse("s3://abc", NULL, NULL, &s, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "AWS_SECRET_ACCESS_KEY"));
    with_credentials(NULL);
}

static void error_words(void **state)
{
    (void)state;
    char out[64];
    const char doc[] = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified "
                       "key does not exist.</Message></Error>";
    blob_s3_error_text(doc, strlen(doc), out, sizeof(out));
    assert_string_equal(out, "NoSuchKey: The specified key does not exist.");
    blob_s3_error_text(doc, strlen(doc), out, 10);
    assert_string_equal(out, "NoSuchKey");
    const char code[] = "<Error><Code>Slow\nDown</Code></Error>";
    blob_s3_error_text(code, strlen(code), out, sizeof(out));
    assert_string_equal(out, "Slow?Down");
    /* Only the given length counts: the closing tag lies past it. */
    blob_s3_error_text(doc, 30, out, sizeof(out));
    assert_string_equal(out, "");
    blob_s3_error_text("{\"error\":\"x\"}", 13, out, sizeof(out));
    assert_string_equal(out, "");
    blob_s3_error_text(NULL, 0, out, sizeof(out));
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addressing),
        cmocka_unit_test(refusals),
        cmocka_unit_test(error_words),
    };
    return cmocka_run_group_tests(tests, with_credentials, NULL);
}
