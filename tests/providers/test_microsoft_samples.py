"""Microsoft's own documented sample line items land in their right category.

Source of every shape below, unless a shape says otherwise: Partner Center REST docs, "Get invoice line
items" (``develop/get-invoiceline-items.md`` of MicrosoftDocs/partner-center-sdk, as mirrored by
xdmushui/partner-center-sdk at commit cfcb21387b40b1ca5cd70ef931481cbd5acb45ff), request-response
examples 1, 2 and 4 (older revision 009619e3: example 2 with ``G000024135``). Field names, number
formats (strings in the new-commerce example) and values are Microsoft's; long ids are shortened.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from include.exact_json import loads_exact
from include.providers.microsoft.normaliser import normalize_header, normalize_lines

# Example 4: Microsoft 365 Phone System trial seat (a reservationOrderId is filled on a licence line).
PHONE_SYSTEM_TRIAL = """{"customerId": "c139c4bf-2e8b-4ab5-8bed-d9f50dcca7a2", "invoiceNumber": "G000773581",
 "orderId": "94e858b6d855", "productId": "CFQ7TTC0LH0R", "skuId": "0002", "availabilityId": "CFQ7TTC0K5RQ",
 "productName": "Microsoft 365 Phone System - Virtual User", "skuName": "Microsoft 365 Phone System - Virtual User",
 "productQualifiers": ["AddOn", "Trial"], "chargeType": "new", "unitPrice": "0", "effectiveUnitPrice": "0",
 "unitType": "", "quantity": "25", "subtotal": "0", "taxTotal": "0", "totalForCustomer": "0", "currency": "USD",
 "publisherName": "Microsoft Corporation", "publisherId": "", "subscriptionDescription": "",
 "subscriptionId": "86646af9-e80a-4aa0-da80-3fd2b792c2cc", "chargeStartDate": "2021-05-20T00:00:00Z",
 "chargeEndDate": "2021-06-19T00:00:00Z", "termAndBillingCycle": "One-Month commitment for trial",
 "referenceId": "0cf1202a-5b7d-4219-966e-93c637113708", "pcToBCExchangeRate": "1", "billableQuantity": "25",
 "meterDescription": "", "billingFrequency": "", "reservationOrderId": "99f246cf-ed96-41b4-b0cd-0aa43eb1fe91",
 "invoiceLineItemType": "billing_line_items", "billingProvider": "one_time", "promotionId": "",
 "attributes": {"objectType": "OneTimeInvoiceLineItem"}}"""

# Example 4: Power BI Premium Per User, yearly commitment billed monthly (reservationOrderId filled too).
POWER_BI = """{"customerId": "835a59a7-3172-47b5-bdef-d9cc65f4d0e4", "invoiceNumber": "G000773581",
 "orderId": "5f9d52bb1408", "productId": "CFQ7TTC0HL8W", "skuId": "0001", "availabilityId": "CFQ7TTC0K59S",
 "productName": "Power BI Premium Per User", "skuName": "Power BI Premium Per User", "productQualifiers": [],
 "chargeType": "new", "unitPrice": "16", "effectiveUnitPrice": "14.4", "unitType": "", "quantity": "50",
 "subtotal": "720", "taxTotal": "73", "totalForCustomer": "793", "currency": "USD",
 "publisherName": "Microsoft Corporation", "publisherId": "", "subscriptionDescription": "",
 "subscriptionId": "9d7d1f3d-c8de-461c-db6d-91debd5129f0", "chargeStartDate": "2021-05-20T00:00:00Z",
 "chargeEndDate": "2021-06-19T00:00:00Z", "termAndBillingCycle": "One-Year commitment for monthly/yearly billing",
 "pcToBCExchangeRate": "1", "billableQuantity": "50", "meterDescription": "", "billingFrequency": "Monthly",
 "reservationOrderId": "8fdebb4a-7110-496e-9570-623e4c992797", "invoiceLineItemType": "billing_line_items",
 "billingProvider": "one_time", "promotionId": "78bcf906-b945-4210-8818-cfb93caf12a1",
 "attributes": {"objectType": "OneTimeInvoiceLineItem"}}"""

# Example 4: a third-party SaaS line (publisher not Microsoft; meterDescription and reservationOrderId filled).
THIRD_PARTY_SAAS = """{"customerId": "c139c4bf-2e8b-4ab5-8bed-d9f50dcca7a2", "invoiceNumber": "T000773581",
 "productId": "DZH318Z0BXWC", "skuId": "0002", "availabilityId": "DZH318Z0BP8B",
 "productName": "Test WAF-as-a-Service", "skuName": "Test WaaS - Medium Plan", "chargeType": "New",
 "unitPrice": 820, "effectiveUnitPrice": 820, "unitType": "", "quantity": 1, "subtotal": 820, "taxTotal": 0,
 "totalForCustomer": 0, "currency": "USD", "publisherName": "Test Networks, Inc.", "publisherId": "21223810",
 "subscriptionDescription": "", "subscriptionId": "12345678-9cf0-4a1f-9514-7fcc7fe9d1fe",
 "chargeStartDate": "2019-02-04T09:22:40.1767993-08:00", "chargeEndDate": "2019-03-03T09:22:40.1767993-08:00",
 "termAndBillingCycle": "1 Year Subscription", "pcToBCExchangeRate": 1, "billableQuantity": 3.1618,
 "meterDescription": "Bandwidth - Data Transfer In (GB) - Zone 2",
 "reservationOrderId": "883d475b-0000-1234-0000-8818752f1234",
 "attributes": {"objectType": "OneTimeInvoiceLineItem"}}"""

# Older example 2 (G000024135): an Azure reservation bought as a one-time line, no publisher fields at all.
RESERVATION = """{"customerId": "org:9060d13d-c5ed-482e-b059-a15a38cbb28e", "invoiceNumber": "G000024135",
 "orderId": "NeqT31Kziwf8gkCXM9YQToWTqU-9Jbm81", "productId": "DZH318Z0BQ3P", "skuId": "001F",
 "availabilityId": "DZH318Z0DR0H", "productName": "Reserved VM Instance, Standard_D1, AP East, 3 years",
 "skuName": "D Series", "chargeType": "Purchase", "unitPrice": 1447, "quantity": 1, "subtotal": 1447,
 "taxTotal": 130.24, "totalForCustomer": 1577.24, "currency": "USD", "discountDetails": "",
 "invoiceLineItemType": "billing_line_items", "billingProvider": "one_time",
 "attributes": {"objectType": "OneTimeInvoiceLineItem"}}"""

# Older example 2 (G000024135): a generic one-time purchase.
TEST_PRODUCT = """{"customerId": "org:9060d13d-c5ed-482e-b059-a15a38cbb28e", "invoiceNumber": "G000024135",
 "productId": "productid", "skuId": "skuid", "productName": "TEST PRODUCT", "skuName": "TEST SKU TITLE",
 "chargeType": "Purchase", "unitPrice": 431.8, "quantity": 1, "subtotal": 431.8, "taxTotal": 38.87,
 "totalForCustomer": 470.67, "currency": "USD", "invoiceLineItemType": "billing_line_items",
 "billingProvider": "one_time", "attributes": {"objectType": "OneTimeInvoiceLineItem"}}"""

# Older one-time lines name the publisher providerName/providerId ("Older examples also show quoteId,
# providerName and providerId", shared/reference/provider-apis.md 1.5 on the same page); shape of example 4.
OLDER_THIRD_PARTY = """{"customerId": "c139c4bf-2e8b-4ab5-8bed-d9f50dcca7a2", "invoiceNumber": "G000024135",
 "orderId": "QDOx5ZN3YR9uYhm4M1MGQJ_0nievUOrx1", "productId": "DZH318Z0BXWC", "skuId": "0005",
 "productName": "Test WAF-as-a-Service", "skuName": "Test WaaS - Large Plan", "chargeType": "New",
 "unitPrice": 2598, "quantity": 1, "subtotal": 2598, "taxTotal": 0, "totalForCustomer": 2598, "currency": "USD",
 "providerName": "Test Networks, Inc.", "providerId": "21223810", "quoteId": "",
 "termAndBillingCycle": "1 Month Subscription", "meterDescription": "",
 "invoiceLineItemType": "billing_line_items", "billingProvider": "one_time",
 "attributes": {"objectType": "OneTimeInvoiceLineItem"}}"""

# A refund of the Power BI seats: "For the line item ChargeType, the value Purchase is mapped to New and
# the value Refund is mapped to Cancel" (same page, REST response); a refund gives money back (negative).
POWER_BI_REFUND = POWER_BI.replace('"chargeType": "new"', '"chargeType": "Cancel"').replace(
    '"subtotal": "720", "taxTotal": "73", "totalForCustomer": "793"',
    '"subtotal": "-720", "taxTotal": "-73", "totalForCustomer": "-793"',
)

# Example 1: legacy Office seat purchase (LicenseBasedLineItem; its 0.0 amounts set to 12.0 here so a refund
# has a sign), and the same line refunded.
EXCHANGE = """{"customerId": "74221236-D09C-4870-AC1D-33E155E9AEBE", "customerName": "TSTAGIN1CUST190",
 "mpnId": 4391507, "tier2MpnId": -1, "orderId": "567735045559164136", "subscriptionId": "4KIKawEAAAAAAAEA",
 "offerId": "AAA5B3F0-0EE2-431B-A42F-3F18F3C6D540", "durableOfferId": "2F707C7C-2433-49A5-A437-9CA7CF40D3EB",
 "offerName": "EXCHANGE ONLINE (PLAN 2)", "billingCycleType": "MONTHLY",
 "chargeStartDate": "2017-05-12T00:00:00", "chargeEndDate": "2017-06-09T00:00:00", "chargeType": "PURCHASE FEE",
 "unitPrice": 4.0, "quantity": 3, "amount": 12.0, "totalOtherDiscount": 0.0, "subtotal": 12.0, "tax": 0.0,
 "totalForCustomer": 12.0, "currency": "USD", "invoiceLineItemType": "billing_line_items", "billingProvider": "office",
 "attributes": {"objectType": "LicenseBasedLineItem"}}"""
EXCHANGE_REFUND = EXCHANGE.replace('"chargeType": "PURCHASE FEE"', '"chargeType": "Cancel"').replace(
    '"totalForCustomer": 12.0', '"totalForCustomer": -12.0'
)

# Example 2: legacy Azure (MS-AZR-0145P) UsageBasedLineItem.
AZURE_145P = """{"detailLineItemId": 1, "sku": "7UD-00001", "includedQuantity": 0, "overageQuantity": 745,
 "listPrice": 0.085, "currency": "USD", "pretaxCharges": 63.33, "taxAmount": 6.34, "postTaxTotal": 69.67,
 "chargeType": "Assess usage fee for current cycle", "invoiceLineItemType": "billing_line_items",
 "customerId": "65726577-c208-40fd-9735-8c85ac000000", "customerCompanyName": "601 tests",
 "subscriptionId": "87f4b92f-a490-485e-ad34-5b70cb000000", "subscriptionName": "Microsoft Azure",
 "serviceName": "Azure App Service", "serviceType": "Standard Plan", "consumedQuantity": 745,
 "chargeStartDate": "2019-08-02T00:00:00", "chargeEndDate": "2019-09-01T00:00:00", "unit": "1 Hour",
 "billingProvider": "azure", "attributes": {"objectType": "UsageBasedLineItem"}}"""

# The documented Invoice resource (get-invoice-by-id, invoice-resources.md) carries no billing period.
HEADER = normalize_header(
    {"id": "G000773581", "invoiceDate": "2021-06-08T00:00:00Z", "totalCharges": 0, "currencyCode": "USD"}
)


@pytest.mark.parametrize(
    ("source", "sample", "category"),
    [
        ("one_time", PHONE_SYSTEM_TRIAL, "licence"),
        ("one_time", POWER_BI, "licence"),
        ("one_time", THIRD_PARTY_SAAS, "marketplace"),
        ("one_time", RESERVATION, "reserved_instance"),
        ("one_time", TEST_PRODUCT, "one_time"),
        ("one_time", OLDER_THIRD_PARTY, "marketplace"),
        ("one_time", POWER_BI_REFUND, "credit"),
        ("office", EXCHANGE, "licence"),
        ("office", EXCHANGE_REFUND, "credit"),
        ("azure", AZURE_145P, "usage"),
    ],
    ids=[
        "m365-trial-with-reservation-order",
        "power-bi-with-reservation-order",
        "third-party-with-meter",
        "azure-reservation",
        "generic-one-time",
        "older-provider-name",
        "new-commerce-refund",
        "office-seats",
        "office-refund",
        "azure-145p",
    ],
)
def test_documented_samples_land_in_their_category(source, sample, category):
    raw = loads_exact(sample)
    (line,) = normalize_lines(HEADER, [(f"{source}/billing_line_items", raw)])
    assert line.category == category


def test_categories_read_pascal_case_export_lines_alike():
    raw = {key[:1].upper() + key[1:]: value for key, value in loads_exact(POWER_BI).items()}
    (line,) = normalize_lines(HEADER, [("one_time/billing_line_items", raw)])
    assert (line.category, line.amount) == ("licence", Decimal("793"))


def test_older_provider_name_is_kept_as_the_publisher():
    (line,) = normalize_lines(HEADER, [("one_time/billing_line_items", loads_exact(OLDER_THIRD_PARTY))])
    assert line.extra["publisher_name"] == "Test Networks, Inc."


def test_a_header_without_billing_period_leaves_it_to_the_lines():
    assert (HEADER.billing_period_start, HEADER.billing_period_end) == (None, None)
